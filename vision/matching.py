"""Product matching: which of the tenant's catalog products a shopper's photo shows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server.errors import InvalidArgumentError
from vision.catalog import ImageCatalog
from vision.embed import ImageEmbedder

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

# Cosine similarity at or above which a photo counts as showing a catalog product, for
# EfficientNetLite0Embedder with colour_weight 0.3. In bench/vision_match.py (24 rendered
# products, 144 distorted photos) the right product scored 0.61 at the 1st percentile,
# images of no product (landscapes, a portrait) at most 0.34, and the best wrong product
# 0.73 at the median and up to 0.87. The threshold therefore rejects photos unrelated to
# the catalog, but a similar product that is missing from the catalog can still pass it.
# NOTE: calibrated on rendered products only; recalibrate on real shopper photos.
DEFAULT_THRESHOLD = 0.55
# Photos fetched per requested product, so that products with many photos do not push
# other products out of the top_k.
PHOTOS_PER_PRODUCT = 8


@dataclass(frozen=True)
class ProductMatch:
    """One catalog product that a photo may show.

    Attributes:
        doc_id: the product's id, as in the text knowledge base.
        title: the product's display title.
        score: cosine similarity of the photo to the product's best catalog photo, -1..1.
        source: file name of that best catalog photo.
        above_threshold: whether the score reaches the matcher's threshold.
    """

    doc_id: str
    title: str
    score: float
    source: str
    above_threshold: bool


class ProductMatcher:
    """Finds the catalog products closest to a photo."""

    def __init__(
        self,
        catalog: ImageCatalog,
        embedder: ImageEmbedder,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        """Match against `catalog` with vectors from `embedder`.

        Args:
            catalog: the tenant catalogs, indexed with the same embedder.
            embedder: the image embedder.
            threshold: cosine similarity at or above which a match is trusted, -1..1.

        Raises:
            InvalidArgumentError: the threshold is outside -1..1.
        """
        if not -1.0 <= threshold <= 1.0:
            raise InvalidArgumentError(
                "threshold", threshold, "a cosine threshold must be within -1..1"
            )
        self.catalog = catalog
        self.embedder = embedder
        self.threshold = threshold

    def match(self, tenant: str, image: Image.Image, top_k: int = 3) -> list[ProductMatch]:
        """Return up to `top_k` products for a photo, best first, one entry per product.

        Args:
            tenant: the tenant whose catalog is searched.
            image: the shopper's photo, any mode; it is converted to RGB.
            top_k: number of products to return, at least 1.

        Raises:
            InvalidArgumentError: `top_k` is below 1 or the tenant is invalid.
        """
        if top_k < 1:
            raise InvalidArgumentError("top_k", top_k, "request at least 1 product")

        vector = self.embedder.embed([image])[0]
        hits = self.catalog.search(tenant, vector, limit=top_k * PHOTOS_PER_PRODUCT)

        # hits come best first, so the first hit of each product is its best photo
        best: dict[str, ProductMatch] = {}
        for hit in hits:
            doc_id = str(hit.payload.get("doc_id", ""))
            if doc_id in best:
                continue
            best[doc_id] = ProductMatch(
                doc_id=doc_id,
                title=str(hit.payload.get("title", doc_id)),
                score=hit.score,
                source=str(hit.payload.get("source", "")),
                above_threshold=hit.score >= self.threshold,
            )
        matches = list(best.values())[:top_k]
        logger.debug(
            "matched a photo for tenant %s: %s",
            tenant, ", ".join(f"{m.doc_id}={m.score:.3f}" for m in matches) or "no products",
        )  # fmt: skip
        return matches
