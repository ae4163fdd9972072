"""Reports, all HTML highlighting included: the identifier's span pages (``spans_html``), the demo's
report, model cards and plots."""
