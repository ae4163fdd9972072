"""Reports: self-contained HTML pages and plots."""
