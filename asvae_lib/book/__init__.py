"""The book's tooling, apart from the model: the library exported from the chapters (``library``),
the Colab cell (``colab``), student versions (``assignments``), stored progress bars
(``notebook_outputs``), the quick-profile timings (``timings``) and the benchmark (``bench``)."""
