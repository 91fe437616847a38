"""The pipeline: attach → fit → test → result record (`runner`), and continual streams of runs."""
