"""A TCP proxy in the test's loop, to take a service away from the bot and give it back."""

import asyncio
import contextlib


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `host`:`target`. `cut` drops every connection and
    refuses new ones, as a database that went away would; `restore` listens again."""

    def __init__(self, host: str, target: int) -> None:
        self.host, self.target = host, target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()

    async def start(self) -> "TcpProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._open):
            writer.close()
        await self._server.wait_closed()

    async def restore(self) -> None:
        await self.start()

    async def stop(self) -> None:
        await self.cut()

    async def _serve(self, client_in: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        try:
            server_in, server = await asyncio.open_connection(self.host, self.target)
        except OSError:
            client.close()
            return
        self._open |= {client, server}
        try:
            await asyncio.gather(_pipe(client_in, server), _pipe(server_in, client))
        finally:
            self._open -= {client, server}
            client.close()
            server.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


class ConnectProxy:
    """An HTTP proxy that tunnels CONNECT, as a company's proxy to Telegram would; it records
    each tunnel's target and login."""

    def __init__(self) -> None:
        self.port = 0
        self.tunnels: list[tuple[str, str]] = []  # (host:port, the Proxy-Authorization header)
        self._server: asyncio.Server | None = None

    async def start(self) -> "ConnectProxy":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, client_in: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        head = (await client_in.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, target, _ = head[0].split(" ", 2)
        login = next(
            (
                h.split(":", 1)[1].strip()
                for h in head
                if h.lower().startswith("proxy-authorization:")
            ),
            "",
        )
        if method != "CONNECT":
            client.close()
            return
        self.tunnels.append((target, login))
        host, port = target.rsplit(":", 1)
        server_in, server = await asyncio.open_connection(host, int(port))
        client.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(_pipe(client_in, server), _pipe(server_in, client))
