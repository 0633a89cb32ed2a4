"""Area targeting: named areas from GeoJSON, an update's area (areas, polygon, circle) and who is inside it."""
