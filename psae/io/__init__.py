"""File safety, internal to psae: atomic writes (``atomic``), the manifests that say which
files psae wrote and may replace (``ownership``) and SHA-256 of files and folders
(``digest``). Every writer in psae goes through these."""
