"""The central office program: MQTT ingest, ledger store, reports."""
