"""toolfetch: a hermetic, OCI-native tool fetcher for build systems."""

__version__ = "0.1.0"
