"""Import of the hotline platform's work-order exports (.xlsx, .xls, .csv) as events."""
