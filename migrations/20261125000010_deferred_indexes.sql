-- A rebuild empties a projector's tables, drops their secondary indexes, refills the tables
-- from the events and creates the indexes again at the end: building an index once from
-- sorted rows costs a fraction of maintaining it row by row (docs/performance.md). The
-- definitions are kept here, written in the transaction that drops the indexes, so a
-- rebuild that dies half-way loses none: the next instance to lead the projector creates
-- them again before it applies anything.
create table projector_deferred_indexes (
    projector  text not null,
    name       text not null,
    definition text not null,
    primary key (projector, name)
);
