"""Workflows that drive several runs: the GLUE leaderboard (:mod:`.glue_leaderboard`)."""
