"""Demo data: five client companies, their agents and routing, customers and a few hundred tickets.

``seed_demo()`` builds the same world on every machine (fixed random seeds, one per tenant) and is
idempotent: rows are found by natural keys (tenant code, email, identity, ``demo-…`` external ids) and
only what is missing is added, so a second run changes no counts. Tickets, customers and agent
profiles are written through their apps' services, so references and the audit trail are real.
The fixed logins in ``DEMO_LOGINS`` are printed by ``make run`` and listed in the README.
"""
