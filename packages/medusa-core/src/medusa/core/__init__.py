"""medusa-core: one event loop, many protocol servers.

The public API: :func:`run` and :func:`serve` (the loop), :class:`Server` (a listening
endpoint), :class:`Channel` (the asynchat model on asyncio), the producers, the confined
:class:`OSFilesystem`, and the :class:`Logger` protocol.
"""

from medusa.core.address import Address, AddressError
from medusa.core.channel import Channel
from medusa.core.log import Logger, StdlibLogger
from medusa.core.loop import new_event_loop, run, serve
from medusa.core.options import ConfigError, Option
from medusa.core.producers import (
    ChunkedProducer,
    CompositeProducer,
    EscapingProducer,
    FileProducer,
    GlobbingProducer,
    HookedProducer,
    LinesProducer,
    Producer,
    SimpleProducer,
)
from medusa.core.server import Server
from medusa.core.stats import Counters

__version__ = "0.1.0"

__all__ = [
    "Address",
    "AddressError",
    "Channel",
    "ChunkedProducer",
    "CompositeProducer",
    "ConfigError",
    "Counters",
    "EscapingProducer",
    "FileProducer",
    "GlobbingProducer",
    "HookedProducer",
    "LinesProducer",
    "Logger",
    "Option",
    "Producer",
    "Server",
    "SimpleProducer",
    "StdlibLogger",
    "new_event_loop",
    "run",
    "serve",
]
