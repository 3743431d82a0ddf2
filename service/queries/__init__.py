"""The read models: what the API, the dashboards, the exports and the jobs show, as domain objects.

Each module answers one kind of question (yields, readings, device state, alerts, health) from the
Store and the config, in SI units and unrounded; turning that into JSON, 斤 and 亩, rounded figures
and HTTP status codes is the web layer's job. Nothing here imports ``service.web``
(tests/test_layers.py reads the import graph), so the jobs runner and the command line can use
the same answers without Flask.
"""
