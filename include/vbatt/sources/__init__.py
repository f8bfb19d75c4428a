"""Where meter readings come from: the smart-me cloud, CSV and MSCONS files."""
