"""Reports: summary tables (and later plots and HTML)."""
