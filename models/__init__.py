"""Tables and typed queries (SQLModel). No Flask and no matcher here: see docs/architecture.md."""


from sqlmodel import SQLModel

# Named constraints, so that migrations can refer to them on both backends.
# Here, so that it is set before any module of models defines a table.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
