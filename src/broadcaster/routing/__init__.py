"""Categories and the routing map: how customers reach us per need, and which channels fire."""
