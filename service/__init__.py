"""labinterp: interpretation of serum vitamin B12, potassium, magnesium and calcium results.

`service.core` is the pure domain core (no Flask); `service.app.create_app` builds the web service.
"""
