"""What both ends of the station-to-ledger link share (wire format, topics, MQTT client)."""
