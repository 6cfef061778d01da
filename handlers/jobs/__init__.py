"""Work that runs at a time: the job table (`table`), the runner that claims due jobs (`runner`) and the
admins' view of jobs that gave up (`commands`).

A capability adds a job kind by naming what runs it in its `Handlers.jobs` and scheduling rows with
`table.schedule`; the runner does the rest: one claim, the effect and the completion in one transaction,
retries with backoff, and a visible failure after the last try.
"""
