"""Per-tenant answer settings: which answer engine and which persona.

`tenant_config_dir/TENANT.yaml`:

```yaml
answer_engine: transformers   # extractive, or the LLM engine of this process
persona:
  brand: 云帆旗舰店
  tone: 亲切、简洁
  rules: [不承诺具体赔偿金额]
```

A process loads one LLM engine (the `answer_engine` setting); each tenant answers with it or
with the extractive engine. Tenants without a file use the process's engine and persona.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rag.prompting import TenantPersona
from server.errors import ConfigError

_KEYS = ("answer_engine", "persona")
_PERSONA_KEYS = ("brand", "tone", "rules")


@dataclass(frozen=True)
class TenantConfig:
    """A tenant's answer settings; `answer_engine` empty means the process default."""

    answer_engine: str = ""
    persona: TenantPersona | None = None


@dataclass
class TenantConfigs:
    """Tenant configs read from `folder`, once per tenant."""

    folder: Path | None
    engines: tuple[str, ...]
    _configs: dict[str, TenantConfig] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def for_tenant(self, tenant: str) -> TenantConfig:
        """Return the tenant's config.

        Raises:
            ConfigError: the tenant's file is invalid or names an engine this process lacks.
        """
        with self._lock:
            config = self._configs.get(tenant)
        if config is not None:
            return config
        path = self.folder / f"{tenant}.yaml" if self.folder else None
        config = _load(path, self.engines) if path and path.exists() else TenantConfig()
        with self._lock:
            self._configs[tenant] = config
        return config


def _load(path: Path, engines: tuple[str, ...]) -> TenantConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read tenant config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"tenant config {path} must be a mapping with keys {', '.join(_KEYS)}")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ConfigError(f"unknown keys {unknown} in {path}; accepted: {', '.join(_KEYS)}")

    engine = str(data.get("answer_engine") or "")
    if engine and engine not in engines:
        raise ConfigError(
            f"invalid answer_engine={engine!r} in {path}: this server has {', '.join(engines)}"
        )
    return TenantConfig(answer_engine=engine, persona=_persona(data.get("persona"), path))


def _persona(value: object, path: Path) -> TenantPersona | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(_PERSONA_KEYS):
        raise ConfigError(
            f"invalid persona in {path}: a mapping with keys {', '.join(_PERSONA_KEYS)}"
        )
    rules = value.get("rules") or []
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        raise ConfigError(f"invalid persona.rules in {path}: a list of sentences")
    return TenantPersona(
        brand=str(value.get("brand") or ""), tone=str(value.get("tone") or ""), rules=tuple(rules)
    )
