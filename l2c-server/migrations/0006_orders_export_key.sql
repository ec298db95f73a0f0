-- The report export walks a client's orders in keyset-paginated batches ordered by
-- (created_at, id): this index lets each batch seek to its starting key and read only its own
-- rows, instead of sorting all of the client's orders again for every batch.
CREATE INDEX orders_client_export ON orders (client_id, created_at, id);
