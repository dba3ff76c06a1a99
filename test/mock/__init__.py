"""Mock Marketo server package (see ../mock_marketo.py for the documented facts).

Modules:
  data     - deterministic lead data model, describe/describe2 metadata
  routes   - envelope helpers, ApiError, the routing table (Router)
  leads    - lead-database read handlers (registered into the Router)
  state    - configuration, tokens, limits, faults, call log and summary
  server   - HTTP plumbing, request pipeline, control API, main()

New endpoint families (activities, assets, bulk, writes) go into new modules
that expose register(router) and are listed in server.HANDLER_MODULES.
"""
