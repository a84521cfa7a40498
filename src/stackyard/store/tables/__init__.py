"""Tables, one module per entity group; importing this package registers them all."""

from stackyard.store.tables.base import Base
from stackyard.store.tables.keys import VirtualKey
from stackyard.store.tables.spend import SpendRecord
from stackyard.store.tables.tenancy import Team, User

__all__ = ["Base", "SpendRecord", "Team", "User", "VirtualKey"]
