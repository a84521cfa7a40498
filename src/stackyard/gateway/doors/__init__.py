"""The doors: one module per wire format onto the request pipeline."""
