"""The ``libcloud`` driver: any Apache Libcloud compute provider by name (ec2, gce,
azure_arm, openstack, …).

Every node is recorded as ``intent`` *before* the provider is asked to create it, and
named and tagged (``hotsite-node``, ``hotsite-project``) so that after a crash at any
point the next run finds it by name/tag: ``create`` of the same name adopts it instead
of making a second one, ``destroy`` removes it. Libcloud is blocking HTTP, so calls
run in threads, a bounded number at once. Credentials are expanded only here (see
``LibcloudProvider.credential``) and never stored or logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import sqlite3
import time
from typing import Any

from hotsite.errors import DriverError, HotsiteError, NodeError
from hotsite.logs import get_logger
from hotsite.nodes import _probe as probe
from hotsite.nodes import records
from hotsite.nodes.base import Capability, Node, NodeDriver, NodeSpec
from hotsite.nodes.config import LibcloudProvider
from hotsite.redaction import redact

log = get_logger(__name__)

# Providers that authenticate with a single token (no secret).
SINGLE_KEY_PROVIDERS = frozenset({"dummy", "digitalocean", "digital_ocean", "linode", "vultr"})
GONE_STATES = frozenset({"terminated", "stopping"})
PARALLEL_API_CALLS = 8


class LibcloudDriver(NodeDriver):
    name = "libcloud"
    capabilities = frozenset(
        {Capability.CREATE, Capability.DESTROY, Capability.TAGS, Capability.LOCATIONS}
    )
    settings: LibcloudProvider

    def __init__(self, provider: str, settings: Any, context: Any) -> None:
        super().__init__(provider, settings, context)
        self._api: Any = None
        self._credentials: list[str] = []  # redacted from every error message
        self._calls = asyncio.Semaphore(PARALLEL_API_CALLS)

    # -- the Libcloud connection ----------------------------------------------------

    def api(self) -> Any:
        """The Libcloud driver object, made on first use (credentials checked here)."""
        if self._api is None:
            from libcloud.compute.providers import get_driver

            provider_name = self.settings.provider
            try:
                cls = get_driver(provider_name)
            except AttributeError:
                raise DriverError(
                    f"unknown Libcloud provider {provider_name!r}"
                    f" (nodes.providers.{self.provider}.provider)",
                    "use a name from libcloud.compute.types.Provider, e.g. ec2, gce, openstack",
                ) from None
            key = self.settings.credential(self.provider, "key")
            args: list[Any] = [key]
            if provider_name.lower() not in SINGLE_KEY_PROVIDERS:
                args.append(self.settings.credential(self.provider, "secret"))
            self._credentials = [str(a) for a in args]
            kwargs = dict(self.settings.options)
            if self.settings.region:
                kwargs["region"] = self.settings.region
            try:
                self._api = cls(*args, **kwargs)
            except TypeError as exc:
                raise DriverError(
                    f"Libcloud provider {provider_name!r} rejects the settings"
                    f" of nodes.providers.{self.provider}: {exc}"
                ) from None
        return self._api

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        async with self._calls:
            try:
                return await asyncio.to_thread(fn, *args, **kwargs)
            except HotsiteError:
                raise
            except Exception as exc:  # Libcloud raises many types; all end here as one line
                text = str(exc) or str(getattr(exc, "message", "")) or repr(exc)
                # Masked before it is cut: a credential at the cut would keep its start.
                text = redact(text, self._credentials)
                message = text.splitlines()[0][:300] if text else type(exc).__name__
                raise DriverError(
                    f"{self.settings.provider} ({self.provider}): {what} failed: {message}",
                    "check the provider's credentials, region and quotas",
                ) from None

    # -- create -----------------------------------------------------------------------

    async def create(self, specs: list[NodeSpec]) -> list[Node]:
        api = self.api()
        existing = await self._recover()
        reuse = {n.name: n for n in existing if n.state == records.RUNNING}
        wanted = [s for s in specs if s.name not in reuse]
        size = image = location = None
        if wanted:
            size = await self._find("size", wanted[0].size or self.settings.size, api.list_sizes)
            image = await self._image(wanted[0].image or self.settings.image)
            if wanted[0].location or self.settings.location:
                location = await self._find(
                    "location", wanted[0].location or self.settings.location, api.list_locations
                )
        auth = await self._auth() if wanted else {}
        intents = self._record_intents(wanted)
        results = await asyncio.gather(
            *(self._create_one(n, size, image, location, auth) for n in intents),
            return_exceptions=True,
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        by_name = {**reuse, **{n.name: n for n in intents}}
        return [by_name[s.name] for s in specs]

    def _record_intents(self, specs: list[NodeSpec]) -> list[Node]:
        nodes = [
            Node(
                name=spec.name,
                driver=self.name,
                driver_id="",
                address="",
                ssh_user=self.settings.user or self.context.ssh.user,
                ssh_key=None,  # the project's current nodes.ssh.key (survives key rotation)
                ssh_jump=self.settings.jump or self.context.ssh.jump,
                tags=dict(spec.tags),
                state=records.INTENT,
                provider=self.provider,
                site=spec.site,
                group=spec.group,
            )
            for spec in specs
        ]
        try:
            with self.context.store.transaction() as conn:
                for node in nodes:
                    records.insert(conn, node)
        except sqlite3.IntegrityError:
            raise NodeError(
                "a node with one of the names "
                + ", ".join(n.name for n in nodes)
                + " already exists (from another provider, or being created)",
                "pick other names, or destroy the existing node",
            ) from None
        return nodes

    def _cloud_tags(self, node: Node) -> dict[str, str]:
        return {**node.tags, "hotsite-node": node.name, "hotsite-project": self.context.project}

    async def _auth(self) -> dict[str, Any]:
        """How new nodes get the project's public key, decided once per create call.

        Where the provider keeps named key pairs (EC2), the key is imported once here:
        letting each concurrent create_node import it races into "duplicate key pair"."""
        public_key = self.context.ssh.public_key()
        api = self.api()
        accepted = inspect.signature(api.create_node).parameters
        if not public_key:
            return {}
        if public_key.count(" ") < 2:  # Libcloud wants a comment on the key line
            public_key += f" hotsite-{self.context.project}"
        if hasattr(api, "import_key_pair_from_string") and "ex_keyname" in accepted:
            return {"ex_keyname": await self._key_pair(public_key)}
        if "auth" in accepted:
            from libcloud.compute.base import NodeAuthSSHKey

            return {"auth": NodeAuthSSHKey(public_key)}
        return {}

    async def _key_pair(self, public_key: str) -> str:
        """A key pair named after the key's hash: found if there, imported if not.
        (Libcloud's find-by-fingerprint does not match ed25519 keys, so we go by name.)"""
        material = " ".join(public_key.split()[:2])
        digest = hashlib.sha256(material.encode()).hexdigest()[:12]
        name = f"hotsite-{self.context.project}-{digest}"
        api = self.api()
        for attempt in range(2):
            pairs = await self._call("listing key pairs", api.list_key_pairs)
            if any(pair.name == name for pair in pairs):
                return name
            try:
                await self._call(
                    "importing the SSH key", api.import_key_pair_from_string, name, material
                )
                return name
            except DriverError:
                if attempt:  # imported by a concurrent hotsite in between: list again
                    raise
        return name

    async def _create_one(
        self, node: Node, size: Any, image: Any, location: Any, auth: dict[str, Any]
    ) -> None:
        api = self.api()
        accepted = inspect.signature(api.create_node).parameters
        kwargs: dict[str, Any] = {
            **self.settings.create_options,
            "name": node.name,
            "size": size,
            "image": image,
            **auth,
        }
        if location is not None and "location" in accepted:
            kwargs["location"] = location
        if "ex_metadata" in accepted:
            kwargs["ex_metadata"] = self._cloud_tags(node)
        try:
            created = await self._call(f"creating {node.name}", api.create_node, **kwargs)
        except BaseException:
            records.delete(self.context.store, [node.name])  # nothing was made (as far as we know)
            raise
        self._adopt(node, created)
        log.info("node.created", node=node.name, provider=self.provider, id=node.driver_id)

    def _adopt(self, node: Node, cloud: Any) -> None:
        node.driver_id = str(cloud.id)
        ips = [*(cloud.public_ips or []), *(cloud.private_ips or [])]
        node.address = ips[0] if ips else ""
        node.state = records.RUNNING
        records.save(self.context.store, node)

    # -- recovery ---------------------------------------------------------------------

    async def _recover(self) -> list[Node]:
        """Complete or drop the intents earlier runs left; return this provider's nodes."""
        mine = records.select(self.context.store, provider=self.provider)
        stale = [
            n
            for n in mine
            if n.state == records.INTENT
            and records.intent_abandoned(
                self.context.store, n.name, self.settings.create_timeout + 120
            )
        ]
        if stale:
            cloud = await self._cloud_nodes()
            for node in stale:
                found = cloud.get(node.name)
                if found is not None:
                    self._adopt(node, found)  # it was made: keep it, the caller may reuse it
                    log.warning("node.recovered", node=node.name, id=node.driver_id)
                else:
                    records.delete(self.context.store, [node.name])
                    log.info("node.intent_dropped", node=node.name, provider=self.provider)
        return records.select(self.context.store, provider=self.provider)

    async def _cloud_nodes(self) -> dict[str, Any]:
        """This project's live nodes at the provider, by hotsite node name."""
        found: dict[str, Any] = {}
        for cloud in await self._call("listing nodes", self.api().list_nodes):
            if str(cloud.state).lower() in GONE_STATES:
                continue
            tags = (cloud.extra or {}).get("tags") or {}
            name = tags.get("hotsite-node") or cloud.name
            if tags.get("hotsite-project", self.context.project) == self.context.project:
                found[name] = cloud
        return found

    # -- lookups ----------------------------------------------------------------------

    async def _find(self, what: str, wanted: str | None, lister: Any) -> Any:
        items = await self._call(f"listing {what}s", lister)
        if wanted is None:
            if not items:
                raise DriverError(f"provider {self.provider!r} offers no {what}s")
            return items[0]
        for item in items:
            if wanted in (str(item.id), getattr(item, "name", None)):
                return item
        known = ", ".join(str(i.id) for i in items[:10])
        raise DriverError(
            f"provider {self.provider!r} has no {what} {wanted!r}",
            f"set nodes.providers.{self.provider}.{what} (some known: {known})",
        )

    async def _image(self, wanted: str | None) -> Any:
        api = self.api()
        if wanted is not None:
            try:
                return await asyncio.to_thread(api.get_image, wanted)
            except Exception:  # not implemented by every driver, or not an id: search the list
                pass
        return await self._find("image", wanted, api.list_images)

    # -- the rest of the contract -------------------------------------------------------

    async def list_nodes(self) -> list[Node]:
        return records.select(self.context.store, provider=self.provider)

    async def wait_reachable(self, nodes: list[Node], timeout: float) -> None:
        """Wait until the provider says running and gives an address, then for SSH."""
        deadline = time.monotonic() + timeout
        waiting = {n.driver_id: n for n in nodes}
        while True:
            cloud = {str(c.id): c for c in await self._call("listing nodes", self.api().list_nodes)}
            for driver_id, node in list(waiting.items()):
                found = cloud.get(driver_id)
                if found is not None and str(found.state).lower() == "running":
                    self._adopt(node, found)  # addresses often appear only once running
                    if node.address:
                        del waiting[driver_id]
            if not waiting:
                break
            if time.monotonic() > deadline:
                names = ", ".join(n.name for n in waiting.values())
                raise NodeError(
                    f"{names}: not running with an address after {timeout:g}s",
                    "see the provider's console; 'hotsite nodes destroy' removes them",
                )
            await asyncio.sleep(3)
        accept_new = self.context.ssh.accept_new_host_keys or bool(
            self.settings.accept_new_host_keys
        )
        await probe.wait_reachable(
            nodes, self.context, accept_new, max(1.0, deadline - time.monotonic())
        )

    async def destroy(self, nodes: list[Node]) -> None:
        await self._recover()
        cloud = {str(c.id): c for c in (await self._cloud_nodes()).values()}
        for node in nodes:
            found = cloud.get(node.driver_id)
            if found is not None:
                await self._call(f"destroying {node.name}", self.api().destroy_node, found)
            records.delete(self.context.store, [node.name])
            if node.address:
                # Clouds recycle addresses: the next machine there is not this one.
                from hotsite.remote import hostkeys

                hostkeys.forget(self.context.store, node.address, node.ssh_port)
            log.info("node.destroyed", node=node.name, provider=self.provider, found=bool(found))
