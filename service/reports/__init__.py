"""Reports a county sends upward as files: the weekly 墒情简报 as PDF and .xlsx.

Content (``moisture_weekly``) is built once from the read models and rendered by ``pdf`` and
``xlsx``, which know nothing of the store, so both files say the same thing. Nothing here imports
the web app: the jobs runner may render a brief to push it to a group robot.
"""
