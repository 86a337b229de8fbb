"""Languages: the paper's language tables and per-language ranks (``tables``), the code users send for each
language and the model's (``codes``), the languages a tokenizer has (``tokens``), mixed-language batches
(``tokenization``)."""
