"""Text in, text out: cleaning, segmentation into model-sized rows and reassembly, language detection, HTML."""
