"""Device models: the wire and the pcnet32 NIC (chip and driver)."""
