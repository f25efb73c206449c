"""The reelq.v1 JobService behind a few plain methods.

Text fields of JobSpec are protobuf `bytes` holding UTF-8 (see proto/reelq/v1/jobs.proto);
job_spec() takes Python strings and encodes them, so callers never handle bytes themselves.
"""

from __future__ import annotations

import hashlib
import itertools
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Optional, Sequence, Union

import grpc

from reelq.v1 import jobs_pb2, jobs_pb2_grpc, models_pb2, models_pb2_grpc

# Job states after which nothing changes any more.
TERMINAL_STATES = frozenset(
    {jobs_pb2.JOB_STATE_SUCCEEDED, jobs_pb2.JOB_STATE_FAILED, jobs_pb2.JOB_STATE_CANCELLED})

# Status codes after which sending the same request again (same idempotency key) is safe and
# may succeed: the server or its Redis was briefly out of reach.
_RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE.value[0]})
# Answers to SubmitJob after which the job may be stored all the same (the answer was lost, or
# redis.wait_replicas came up short after the master stored it): sent again with the same key.
_MAY_BE_STORED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# Items per SubmitBatchRequest, all in `specs`: gRPC's work per message is paid once per this
# many items on both sides, and a scheduler older than `specs` refuses each such message as one
# empty item (no job made) rather than taking its first item only.
_ITEMS_PER_MESSAGE = 100


def _utf8(value: Union[str, bytes]) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def job_spec(prompt: Union[str, bytes] = "",
             *,
             models: Sequence[str] = (),
             duration_seconds: int = 0,
             shots: Sequence[tuple] = (),
             aspect_ratio: str = "",
             resolution: str = "",
             audio: Optional[bool] = None,
             priority: int = 0,
             idempotency_key: str = "",
             batch_id: str = "",
             negative_prompt: str = "",
             labels: Optional[Mapping[str, str]] = None,
             tenant: str = "") -> jobs_pb2.JobSpec:
    """A JobSpec from Python strings. `shots` is a list of (prompt, duration_seconds)."""
    spec = jobs_pb2.JobSpec(
        prompt=_utf8(prompt),
        models=[_utf8(m) for m in models],
        duration_seconds=duration_seconds,
        aspect_ratio=_utf8(aspect_ratio),
        resolution=_utf8(resolution),
        priority=priority,
        idempotency_key=_utf8(idempotency_key),
        batch_id=_utf8(batch_id),
        negative_prompt=_utf8(negative_prompt),
        tenant=_utf8(tenant),
    )
    for shot_prompt, shot_seconds in shots:
        spec.shots.add(prompt=_utf8(shot_prompt), duration_seconds=shot_seconds)
    if audio is not None:
        spec.audio = audio
    for key, value in (labels or {}).items():
        spec.labels[key] = _utf8(value)
    return spec


@dataclass
class BatchResult:
    """What submit_batch did: one job id per item (in order), and the items refused."""
    batch_id: str
    job_ids: list = field(default_factory=list)  # "" where the item was refused
    duplicates: int = 0  # items whose idempotency key matched an existing job
    errors: dict = field(default_factory=dict)  # index -> (grpc code int, message)
    streams: int = 0  # SubmitBatch calls made (one per chunk, plus retries)

    @property
    def accepted(self) -> int:
        return sum(1 for j in self.job_ids if j)


def item_key(batch_id: str, index: int, spec: jobs_pb2.JobSpec) -> str:
    """The idempotency key submit_batch gives an item that has none: "py-" and 32 hex digits of
    SHA-256 over the batch id, the item's index and its content (deterministic serialisation)."""
    digest = hashlib.sha256()
    digest.update(f"{batch_id}\n{index}\n".encode())
    digest.update(spec.SerializeToString(deterministic=True))
    return "py-" + digest.hexdigest()[:32]


class Client:
    """A connection to one reelq scheduler.

    target: "host:port". tls: use TLS (root_certificates: PEM bytes of the CA, default: the
    system's; certificate_chain and private_key: PEM bytes of this client's certificate and
    key, for a scheduler that asks for one, `tls_client_ca_file`). Any of those three turns
    TLS on by itself. token: sent on every call as `authorization: Bearer <token>` metadata,
    which is how the scheduler learns the caller's tenant when tenants are configured.
    timeout: seconds for each unary call.
    """

    def __init__(self,
                 target: str,
                 *,
                 token: Optional[str] = None,
                 tls: bool = False,
                 root_certificates: Optional[bytes] = None,
                 certificate_chain: Optional[bytes] = None,
                 private_key: Optional[bytes] = None,
                 timeout: float = 30.0,
                 channel_options: Sequence[tuple] = ()):
        if (certificate_chain is None) != (private_key is None):
            raise ValueError("certificate_chain and private_key: give both (the client's "
                             "certificate and its key) or neither")
        if tls or root_certificates is not None or certificate_chain is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates,
                                                       private_key=private_key,
                                                       certificate_chain=certificate_chain)
            self._channel = grpc.secure_channel(target, credentials, options=list(channel_options))
        else:
            self._channel = grpc.insecure_channel(target, options=list(channel_options))
        # The token travels as plain metadata rather than as call credentials, because gRPC
        # refuses call credentials on an insecure channel and a loopback scheduler may use one.
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout
        self._jobs = jobs_pb2_grpc.JobServiceStub(self._channel)
        self._models = models_pb2_grpc.ModelServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- single jobs ------------------------------------------------------------------------

    def submit(self, spec: jobs_pb2.JobSpec, retries: int = 3) -> jobs_pb2.SubmitJobResponse:
        """Submits one job. A spec without an idempotency key of its own is given one (a random
        UUID, on a copy), so that when the scheduler may have stored the job but its answer was
        lost (UNAVAILABLE, DEADLINE_EXCEEDED) the submit can be sent again without making, and
        paying for, the job twice: those are sent again up to `retries` times, with a short
        backoff. The answer then names the job stored the first time (`duplicate` set).

        Every grpc.RpcError raised here carries `idempotency_key` (str), the key that was sent.
        When its code is UNAVAILABLE or DEADLINE_EXCEEDED the job may be stored all the same:
        submit again with that key on the spec (`spec.idempotency_key = error.idempotency_key`)
        to be answered with that job rather than make, and pay for, a second one."""
        if not spec.idempotency_key:
            keyed = jobs_pb2.JobSpec()
            keyed.CopyFrom(spec)
            keyed.idempotency_key = _utf8(f"py-{uuid.uuid4().hex}")
            spec = keyed
        request = jobs_pb2.SubmitJobRequest(spec=spec)
        for attempt in itertools.count():
            try:
                return self._jobs.SubmitJob(request, timeout=self._timeout,
                                            metadata=self._metadata)
            except grpc.RpcError as error:
                if error.code() not in _MAY_BE_STORED or attempt >= retries:
                    error.idempotency_key = bytes(spec.idempotency_key).decode(
                        "utf-8", errors="replace")
                    raise
                time.sleep(min(2.0, 0.2 * 2 ** attempt))

    def get(self, job_id: str) -> jobs_pb2.JobStatus:
        return self._jobs.GetJob(jobs_pb2.GetJobRequest(job_id=job_id),
                                 timeout=self._timeout, metadata=self._metadata)

    def cancel(self, job_id: str) -> jobs_pb2.JobStatus:
        return self._jobs.CancelJob(jobs_pb2.CancelJobRequest(job_id=job_id),
                                    timeout=self._timeout, metadata=self._metadata)

    def retry(self, job_id: str) -> jobs_pb2.JobStatus:
        return self._jobs.RetryJob(jobs_pb2.RetryJobRequest(job_id=job_id),
                                   timeout=self._timeout, metadata=self._metadata)

    def list_jobs(self,
                  *,
                  state: int = jobs_pb2.JOB_STATE_UNSPECIFIED,
                  batch_id: str = "",
                  model: str = "",
                  tenant: str = "",
                  page_size: int = 100) -> Iterator[jobs_pb2.JobStatus]:
        """Every job that matches, newest first, page by page (the scheduler's cursor stays
        right while jobs change state). `state`: a jobs_pb2.JOB_STATE_* value; `tenant`: for
        an admin token (a tenant token lists its own jobs)."""
        token = ""
        while True:
            page = self._jobs.ListJobs(
                jobs_pb2.ListJobsRequest(tenant=tenant, state=state, batch_id=batch_id,
                                         model=model, page_size=page_size, page_token=token),
                timeout=self._timeout, metadata=self._metadata)
            yield from page.jobs
            token = page.next_page_token
            if not token:
                return

    def pick_take(self, job_id: str, take_job_id: str,
                  delete_others: bool = False) -> jobs_pb2.JobStatus:
        """Names the take a compare keeps (and, with delete_others, deletes the others' clips)."""
        return self._jobs.PickTake(
            jobs_pb2.PickTakeRequest(job_id=job_id, take_job_id=take_job_id,
                                     delete_others=delete_others),
            timeout=self._timeout, metadata=self._metadata)

    def get_wallet(self, tenant: str = "", ledger_limit: int = 0) -> jobs_pb2.Wallet:
        """The wallet: available, reserved, spent, and the newest ledger entries. `tenant`: for
        an admin token; a tenant token reads its own."""
        return self._jobs.GetWallet(
            jobs_pb2.GetWalletRequest(tenant=tenant, ledger_limit=ledger_limit),
            timeout=self._timeout, metadata=self._metadata)

    def list_models(self) -> models_pb2.ListModelsResponse:
        """The catalogue's models with what they make, their price and queue depth."""
        return self._models.ListModels(models_pb2.ListModelsRequest(), timeout=self._timeout,
                                       metadata=self._metadata)

    def get_stats(self) -> models_pb2.GetStatsResponse:
        """The queue: jobs pending, dispatched and running, per model, account and tenant."""
        return self._models.GetStats(models_pb2.GetStatsRequest(), timeout=self._timeout,
                                     metadata=self._metadata)

    def get_batch(self, batch_id: str) -> jobs_pb2.BatchProgress:
        return self._jobs.GetBatch(jobs_pb2.GetBatchRequest(batch_id=batch_id),
                                   timeout=self._timeout, metadata=self._metadata)

    def cancel_batch(self, batch_id: str,
                     timeout: Optional[float] = 600) -> jobs_pb2.BatchActionResponse:
        """Cancels every job of the batch that has not ended; sent again, it goes on."""
        return self._jobs.CancelBatch(jobs_pb2.CancelBatchRequest(batch_id=batch_id),
                                      timeout=timeout, metadata=self._metadata)

    def retry_batch(self, batch_id: str,
                    timeout: Optional[float] = 600) -> jobs_pb2.BatchActionResponse:
        """Runs every FAILED or CANCELLED job of the batch again (a group: what of it failed)."""
        return self._jobs.RetryBatch(jobs_pb2.RetryBatchRequest(batch_id=batch_id),
                                     timeout=timeout, metadata=self._metadata)

    # ---- batches ----------------------------------------------------------------------------

    def submit_batch(self,
                     specs: Iterable[jobs_pb2.JobSpec],
                     *,
                     batch_id: Optional[str] = None,
                     items_per_stream: int = 10_000,
                     retries: int = 5,
                     stream_timeout: float = 600.0,
                     budget_micros: int = 0,
                     batch_webhook_url: str = "",
                     batch_webhook_events: str = "") -> BatchResult:
        """Submits every spec of `specs` (any iterable, read lazily) as one batch.

        Flow control: the specs go out on a SubmitBatch stream, 100 to a message, and gRPC
        takes the next message only when HTTP/2 flow control lets it send (the scheduler reads
        one message at a time), so a generator over a huge file is never held whole. At most
        `items_per_stream` items are kept, so that a stream that breaks can be sent again.

        Every item gets the batch id (given, or a new one) and, unless it has one, an
        idempotency key made from the batch id, its index and its content (`item_key`): sending
        an item again never makes a second job, and neither does calling this again with the
        same specs and batch id; an item whose content differs is a new job. Items refused as
        UNAVAILABLE (Redis briefly out of reach) and streams that break or outlive
        `stream_timeout` (DEADLINE_EXCEEDED) are sent again, up to `retries` times with
        backoff; other refusals land in `errors`. An error that ends the call carries `batch_id` and `batch_result` (what was accepted so far): call again with
        that batch id and the same specs to send the rest without paying twice.

        budget_micros: the batch's budget (micro-dollars; items that could take it past it are
        refused). batch_webhook_url / batch_webhook_events ("end" or "all"): where reelq POSTs
        batch.completed (and, with "all", each job's end); named on every message, so every
        stream of the batch names it first.
        """
        if items_per_stream <= 0:
            raise ValueError("items_per_stream must be positive")
        batch = batch_id or f"py-{uuid.uuid4().hex}"
        result = BatchResult(batch_id=batch)
        extra = {"budget_micros": budget_micros,
                 "batch_webhook_url": _utf8(batch_webhook_url),
                 "batch_webhook_events": _utf8(batch_webhook_events)}
        numbered = enumerate(specs)
        while True:
            chunk = []
            for index, spec in itertools.islice(numbered, items_per_stream):
                item = jobs_pb2.JobSpec()
                item.CopyFrom(spec)
                if item.batch_id and item.batch_id != _utf8(batch):
                    raise ValueError(f"item {index}: batch_id {item.batch_id!r} is not {batch!r}")
                item.batch_id = _utf8(batch)
                if not item.idempotency_key:
                    item.idempotency_key = _utf8(item_key(batch, index, item))
                chunk.append((index, item))
                result.job_ids.append("")
            if not chunk:
                return result
            try:
                self._send_chunk(chunk, result, retries, stream_timeout, extra)
            except (grpc.RpcError, RuntimeError) as error:
                # Jobs already accepted run and are billed: say which batch they are in.
                error.batch_id = batch
                error.batch_result = result
                raise

    def _send_chunk(self, chunk, result: BatchResult, retries: int, stream_timeout: float,
                    extra: Mapping[str, object]):
        pending = chunk
        for attempt in range(retries + 1):
            if attempt > 0:
                time.sleep(min(0.2 * 2**(attempt - 1), 5.0))
            requests = (jobs_pb2.SubmitBatchRequest(
                specs=[spec for _, spec in pending[at:at + _ITEMS_PER_MESSAGE]], **extra)
                        for at in range(0, len(pending), _ITEMS_PER_MESSAGE))
            result.streams += 1
            try:
                response = self._jobs.SubmitBatch(requests, timeout=stream_timeout,
                                                  metadata=self._metadata)
            except grpc.RpcError as error:
                # A stream cut off or past its deadline may have been stored: it is sent again
                # whole, and the items' idempotency keys make that safe.
                if error.code() not in _MAY_BE_STORED or attempt == retries:
                    raise
                continue
            if len(response.items) != len(pending):
                raise RuntimeError(
                    f"SubmitBatch: the scheduler answered for {len(response.items)} of "
                    f"{len(pending)} items; it may predate SubmitBatchRequest.specs (many items "
                    "to a message): upgrade it")
            again = []
            for item in response.items:
                index, spec = pending[item.index]
                if item.code == 0:
                    result.job_ids[index] = item.job_id
                    result.duplicates += 1 if item.duplicate else 0
                    result.errors.pop(index, None)
                elif item.code in _RETRYABLE_CODES and attempt < retries:
                    again.append((index, spec))
                else:
                    result.errors[index] = (item.code, item.message)
            if not again:
                return
            pending = again

    def watch_batch(self, batch_id: str, timeout: Optional[float] = None) -> Iterator[jobs_pb2.JobEvent]:
        """Every state change of the batch's jobs (those so far, then live ones); ends when
        every job of the batch is terminal. Each event carries the batch's progress."""
        return self._watch(jobs_pb2.WatchJobRequest(batch_id=batch_id), timeout)

    def watch_job(self, job_id: str, timeout: Optional[float] = None) -> Iterator[jobs_pb2.JobEvent]:
        return self._watch(jobs_pb2.WatchJobRequest(job_id=job_id), timeout)

    # A watch that breaks after it delivered events is opened again, up to this many times in a
    # row: the scheduler ended it because this client read too slowly (RESOURCE_EXHAUSTED: it
    # queues at most 10,000 messages for one stream), or it restarted (UNAVAILABLE). A watch
    # refused before it delivered anything (RESOURCE_EXHAUSTED: the scheduler's limit on open
    # watches) is raised: it would be refused again. A reopened watch starts from the current
    # state; a job watch's replayed events already yielded are skipped.
    _WATCH_REOPENS = 5

    def _watch(self, request, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        seen = set()  # a job watch's events yielded so far (a batch watch is not replayed)
        reopens = 0
        delivered = False
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                for event in self._jobs.WatchJob(request, timeout=left, metadata=self._metadata):
                    if request.job_id:
                        key = (event.job_id, event.state, event.phase, event.at.seconds,
                               event.at.nanos, event.detail)
                        if key in seen:
                            continue
                        seen.add(key)
                    delivered = True
                    reopens = 0
                    yield event
                return
            except grpc.RpcError as error:
                code = error.code()
                again = delivered and code in (grpc.StatusCode.RESOURCE_EXHAUSTED,
                                               grpc.StatusCode.UNAVAILABLE)
                if not again or reopens >= self._WATCH_REOPENS:
                    raise
                reopens += 1
                time.sleep(min(0.25 * 2 ** (reopens - 1), 4.0))
