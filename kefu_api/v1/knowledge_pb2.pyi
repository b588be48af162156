from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEARCH_MODE_UNSPECIFIED: _ClassVar[SearchMode]
    SEARCH_MODE_HYBRID: _ClassVar[SearchMode]
    SEARCH_MODE_DENSE: _ClassVar[SearchMode]
    SEARCH_MODE_SPARSE: _ClassVar[SearchMode]
SEARCH_MODE_UNSPECIFIED: SearchMode
SEARCH_MODE_HYBRID: SearchMode
SEARCH_MODE_DENSE: SearchMode
SEARCH_MODE_SPARSE: SearchMode

class ImageFile(_message.Message):
    __slots__ = ("name", "content")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: bytes
    def __init__(self, name: _Optional[str] = ..., content: _Optional[bytes] = ...) -> None: ...

class UpsertImagesRequest(_message.Message):
    __slots__ = ("tenant", "images", "manifest", "manifest_name")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_NAME_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    images: _containers.RepeatedCompositeFieldContainer[ImageFile]
    manifest: bytes
    manifest_name: str
    def __init__(self, tenant: _Optional[str] = ..., images: _Optional[_Iterable[_Union[ImageFile, _Mapping]]] = ..., manifest: _Optional[bytes] = ..., manifest_name: _Optional[str] = ...) -> None: ...

class SourceFile(_message.Message):
    __slots__ = ("name", "content", "title_field")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_FIELD_NUMBER: _ClassVar[int]
    name: str
    content: bytes
    title_field: str
    def __init__(self, name: _Optional[str] = ..., content: _Optional[bytes] = ..., title_field: _Optional[str] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("doc_id", "kind", "title", "text", "category", "fields_json", "source")
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    FIELDS_JSON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    kind: str
    title: str
    text: str
    category: str
    fields_json: str
    source: str
    def __init__(self, doc_id: _Optional[str] = ..., kind: _Optional[str] = ..., title: _Optional[str] = ..., text: _Optional[str] = ..., category: _Optional[str] = ..., fields_json: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class UpsertRequest(_message.Message):
    __slots__ = ("tenant", "files", "documents")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    files: _containers.RepeatedCompositeFieldContainer[SourceFile]
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    def __init__(self, tenant: _Optional[str] = ..., files: _Optional[_Iterable[_Union[SourceFile, _Mapping]]] = ..., documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ...) -> None: ...

class SkippedRow(_message.Message):
    __slots__ = ("file", "row", "reason")
    FILE_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    file: str
    row: int
    reason: str
    def __init__(self, file: _Optional[str] = ..., row: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class UpsertResponse(_message.Message):
    __slots__ = ("added", "updated", "unchanged", "deleted", "skipped")
    ADDED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    added: int
    updated: int
    unchanged: int
    deleted: int
    skipped: _containers.RepeatedCompositeFieldContainer[SkippedRow]
    def __init__(self, added: _Optional[int] = ..., updated: _Optional[int] = ..., unchanged: _Optional[int] = ..., deleted: _Optional[int] = ..., skipped: _Optional[_Iterable[_Union[SkippedRow, _Mapping]]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("tenant", "doc_ids", "source")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    DOC_IDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    doc_ids: _containers.RepeatedScalarFieldContainer[str]
    source: str
    def __init__(self, tenant: _Optional[str] = ..., doc_ids: _Optional[_Iterable[str]] = ..., source: _Optional[str] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("tenant", "query", "top_k", "mode")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    query: str
    top_k: int
    mode: SearchMode
    def __init__(self, tenant: _Optional[str] = ..., query: _Optional[str] = ..., top_k: _Optional[int] = ..., mode: _Optional[_Union[SearchMode, str]] = ...) -> None: ...

class SearchHit(_message.Message):
    __slots__ = ("doc_id", "title", "text", "score", "kind", "source", "category", "fields_json")
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    FIELDS_JSON_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    title: str
    text: str
    score: float
    kind: str
    source: str
    category: str
    fields_json: str
    def __init__(self, doc_id: _Optional[str] = ..., title: _Optional[str] = ..., text: _Optional[str] = ..., score: _Optional[float] = ..., kind: _Optional[str] = ..., source: _Optional[str] = ..., category: _Optional[str] = ..., fields_json: _Optional[str] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("hits",)
    HITS_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[SearchHit]
    def __init__(self, hits: _Optional[_Iterable[_Union[SearchHit, _Mapping]]] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("faq", "doc", "record", "passages", "sources")
    FAQ_FIELD_NUMBER: _ClassVar[int]
    DOC_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    PASSAGES_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    faq: int
    doc: int
    record: int
    passages: int
    sources: int
    def __init__(self, faq: _Optional[int] = ..., doc: _Optional[int] = ..., record: _Optional[int] = ..., passages: _Optional[int] = ..., sources: _Optional[int] = ...) -> None: ...
