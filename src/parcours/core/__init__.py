"""The shared kernel every context builds on: settings, database, errors, events, auth,
ids, money, geo, clock and i18n. Contexts import its modules directly."""
