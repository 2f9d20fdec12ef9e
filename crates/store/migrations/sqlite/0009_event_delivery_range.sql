-- An event's deliveries are found through the range of their ids, kept on the event, instead
-- of the `deliveries_event` index: one b-tree fewer written for every delivery (see
-- docs/adr/0013-event-deliveries-by-id-range.md). A publish writes an event's deliveries in one
-- go, so their ids (time-ordered, made one after another) sit next to each other in the primary
-- key; readers still filter on `event_id`, so the range only has to contain them all.
ALTER TABLE events ADD COLUMN first_delivery TEXT;
ALTER TABLE events ADD COLUMN last_delivery TEXT;
UPDATE events SET
    first_delivery = (SELECT min(d.id) FROM deliveries d WHERE d.event_id = events.id),
    last_delivery = (SELECT max(d.id) FROM deliveries d WHERE d.event_id = events.id)
WHERE deliveries > 0;
DROP INDEX deliveries_event;
