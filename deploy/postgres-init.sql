-- One database per service: no service reads another's tables.
CREATE DATABASE handoff;
CREATE DATABASE lifecycle;
CREATE DATABASE metrics;
CREATE DATABASE notifier;
