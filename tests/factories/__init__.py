"""Factories per app. They build rows through the services where a service owns the write."""
