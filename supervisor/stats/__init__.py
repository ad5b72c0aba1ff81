"""Monthly statistics (月度统计) and unit assessment: facts, SQL aggregates and renderings."""
