"""The road from pixels to vectors: images, alignment, quality, embedding, the pipeline."""
