"""The console: the web app post-sales people work in, on top of the four services' public APIs."""
