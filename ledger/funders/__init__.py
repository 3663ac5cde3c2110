"""What funders ask of the office beyond the report: FEAD / ESF+ indicators from household
compositions (``households``, ``fead``), eco-organism tonnages (``eco``), and their renderings
(``render``). Definitions and sources: docs/reports.md."""
