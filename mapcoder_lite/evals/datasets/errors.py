"""The two errors a benchmark that cannot be loaded raises."""


class DatasetError(ValueError):
    """A dataset that cannot be loaded; the message says why and what to do."""


class DataFileError(DatasetError):
    """A benchmark file that is there but cannot be read as it is (bad JSON, conflicting records)."""
