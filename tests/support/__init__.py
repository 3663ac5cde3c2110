"""What the tests share: a throwaway broker and PostgreSQL, Chromium, datasets, fixtures."""
