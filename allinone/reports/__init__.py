"""Reports that combine several experiments into one table or plot."""
