"""Reports: tables, figures and the aggregation of result records over seeds."""
