"""Services (components): a first-class list with a current state, changed by hand or by incident updates."""
