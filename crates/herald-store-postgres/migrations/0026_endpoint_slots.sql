-- The places an endpoint's `maxConcurrency` allows, shared by every node: an attempt to a
-- capped endpoint takes a free place (one whose hold is over) before it starts and frees
-- it when the endpoint has answered, so that the cap holds for the cluster, not per node.
-- Rows are made the first time a place is taken and then only updated; a node that dies
-- mid-attempt leaves its place held until `held_until`, twice the attempt's timeout.
CREATE TABLE endpoint_slots (
    endpoint_id TEXT COLLATE "C" NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    slot        INT4 NOT NULL,
    holder      TEXT NOT NULL,
    held_until  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (endpoint_id, slot)
);
