"""The HL7 v2 door: ORU^R01 messages in ER7, enriched with the core's interpretation.

Pure modules (no Flask, no asyncio): `er7` reads a message and edits its bytes in place, `oru` maps
its OBR/OBX/PID segments to the core's inputs, `enrich` runs the core and writes the answers back,
`ack` builds and reads acknowledgements. `views` is the Flask blueprint (POST /hl7v2/interpret) and
`listener` the asyncio MLLP listener that forwards each message downstream. docs/hl7v2.md says how.
"""
