-- What the retention purge (and the foreign key it deletes under) looks rows up by: finished
-- deliveries by age, deliveries by event (the NOT EXISTS check, and PostgreSQL's check of
-- webhook_deliveries.event_id when an event is deleted), and events by age.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (status, updated_at);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
CREATE INDEX webhook_events_created ON webhook_events (created_at);
