"""The console shell: layout, login, language, vendored static assets."""
