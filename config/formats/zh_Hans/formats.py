"""Number formats of the Chinese pages (FORMAT_MODULE_PATH); dates and everything else come from Django's zh_Hans.

Django's own Chinese format groups nothing (THOUSAND_SEPARATOR ""). Figures in Chinese land registry and finance
papers group thousands with a comma, as English does: 1,589,529.00 公顷 / 元.
"""

DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
