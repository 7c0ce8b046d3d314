"""Chapter 1: weak supervision. Labeling functions guess which flights arrive late;
a label model fuses their votes with a small expert-labelled sample into training labels.

Leaves ``delay_labels`` (key ``flight_id``; label, probs FLOAT[2], confidence, source,
weight) for the training chapter, and ``flight_facts`` (the features the LFs read).
"""

from __future__ import annotations

import pyarrow.compute as pc

import sqlml

TITLE = "Chapter 1 - weak supervision: labeling functions and a label model"


def run(tour) -> None:
    con = tour.con
    sample = "WHERE f.month IN (1, 10)" if tour.quick else ""
    tour.say("Which flights will arrive more than 15 minutes late? Nobody labeled them, but we have hunches")
    tour.say("about schedules, carriers, routes and weather. First the facts the hunches read (weather joined):")
    tour.run(
        f"""
CREATE OR REPLACE TABLE flight_facts AS
SELECT f.flight_id, f.month, f.sched_dep_time, f.carrier, f.origin, f.dest, f.distance,
       w.visib, w.precip, w.wind_speed,
       -- a small sample an expert labeled by hand (1 flight in 200)
       CASE WHEN f.flight_id % 200 = 0 THEN CASE WHEN f.arr_delay > 15 THEN 'late' ELSE 'on_time' END END
           AS expert_label
FROM flights AS f LEFT JOIN weather AS w USING (origin, time_hour)
{sample + (" AND" if sample else "WHERE")} f.arr_delay IS NOT NULL
"""
    )
    tour.say("\nLabeling functions are SQL expressions: a class name votes, NULL abstains. The first one")
    tour.say("declares the table's classes.")
    tour.run(
        """
CREATE OR REPLACE LABELING FUNCTION early_departure ON flight_facts WITH (classes := ['on_time', 'late']) AS
    CASE WHEN sched_dep_time < 900 THEN 'on_time' END;
CREATE OR REPLACE LABELING FUNCTION evening_departure ON flight_facts AS
    CASE WHEN sched_dep_time >= 1700 THEN 'late' END;
CREATE OR REPLACE LABELING FUNCTION reliable_carrier ON flight_facts AS
    CASE WHEN carrier IN ('HA', 'AS', 'US', 'VX', 'DL', 'AA') THEN 'on_time' END;
CREATE OR REPLACE LABELING FUNCTION delay_prone_carrier ON flight_facts AS
    CASE WHEN carrier IN ('EV', 'YV', 'FL', 'F9') THEN 'late' END;
CREATE OR REPLACE LABELING FUNCTION low_visibility ON flight_facts AS
    CASE WHEN visib < 3 THEN 'late' END;
CREATE OR REPLACE LABELING FUNCTION rain_or_snow ON flight_facts AS
    CASE WHEN precip > 0 THEN 'late' END;
CREATE OR REPLACE LABELING FUNCTION quiet_autumn ON flight_facts AS
    CASE WHEN month IN (9, 10, 11) THEN 'on_time' END
"""
    )
    tour.say("\nBuilders write the SQL for you; a lookup table gives distant supervision by a join:")
    tour.run(
        """
CREATE OR REPLACE TABLE airport_reputation AS SELECT * FROM (VALUES
    ('CVG', 'late'), ('BNA', 'late'), ('IAD', 'late'), ('DEN', 'late'), ('STL', 'late'),
    ('MIA', 'on_time'), ('BOS', 'on_time'), ('LAS', 'on_time'), ('SEA', 'on_time'), ('DFW', 'on_time')
) AS t(faa, reputation)
"""
    )
    con.register(sqlml.lookup_lf("destination_reputation", on="flight_facts", column="dest",
                                 table="airport_reputation", key="faa", label_column="reputation"))
    tour.say("  con.register(sqlml.lookup_lf('destination_reputation', on='flight_facts', column='dest',")
    tour.say("                               table='airport_reputation', key='faa', label_column='reputation'))")
    tour.say("\nPython labeling functions get Arrow arrays, a chunk at a time:")
    tour.say("  @sqlml.labeling_function(on='flight_facts', inputs=['wind_speed'])")
    tour.say("  def gusty(wind): return pc.if_else(pc.greater(wind, 20), 'late', None)")

    @sqlml.labeling_function(on="flight_facts", inputs=["wind_speed"])
    def gusty(wind):
        return pc.if_else(pc.greater(wind, 20), "late", None)

    con.register(gusty)
    tour.say("\nAPPLY runs every labeling function in one scan and keeps the votes (only the non-abstains):")
    tour.show("APPLY LABELING FUNCTIONS ON flight_facts KEY flight_id")
    tour.say("\nml_lf_summary is plain SQL (it runs in the DuckDB shell too); the expert sample gives accuracies:")
    tour.show(
        "SELECT lf, polarity, round(coverage, 3) AS coverage, round(overlap, 3) AS overlap, "
        "round(conflict, 3) AS conflict, correct, incorrect, round(emp_accuracy, 3) AS emp_accuracy "
        "FROM ml_lf_summary('flight_facts', gold := 'expert_label')"
    )
    tour.say("\nThe label model learns how far to trust each function (and the class balance) from their")
    tour.say("agreements alone; expert labels override the weak ones for their rows. Majority vote, for comparison:")
    tour.show("CREATE OR REPLACE LABEL MODEL delay_labels ON flight_facts GOLD expert_label WITH (seed := 0)")
    tour.run("CREATE OR REPLACE LABEL MODEL delay_majority ON flight_facts GOLD expert_label WITH (method := 'majority')")
    tour.show("SELECT * FROM delay_labels ORDER BY flight_id LIMIT 5")
    tour.say("\nOn the flights the expert did not label, against what really happened:")
    rows = tour.show(
        """
WITH truth AS (SELECT flight_id, CASE WHEN arr_delay > 15 THEN 'late' ELSE 'on_time' END AS truth FROM flights),
scored AS (
    SELECT 'label model' AS model, l.label, t.truth FROM delay_labels AS l JOIN truth AS t USING (flight_id)
    WHERE l.source <> 'gold'
    UNION ALL
    SELECT 'majority vote', l.label, t.truth FROM delay_majority AS l JOIN truth AS t USING (flight_id)
    WHERE l.source <> 'gold'
)
SELECT model, round(avg((label = truth)::INT), 4) AS accuracy,
       round(2 * count(*) FILTER (WHERE label = 'late' AND truth = 'late')
             / (count(*) FILTER (WHERE label = 'late') + count(*) FILTER (WHERE truth = 'late')), 4) AS late_f1,
       count(*) AS flights
FROM scored GROUP BY model ORDER BY model
"""
    )
    tour.facts["labeling"] = {r[0]: {"accuracy": r[1], "late_f1": r[2]} for r in rows}
    tour.say("The label model is right more often; majority vote calls more flights late (so it finds more")
    tour.say("of the late ones, at the price of many false alarms): the label model knows from the expert")
    tour.say("sample that about one flight in four is late, and weighs each hunch by its learned accuracy.")
    tour.say("\nWhat training will read: a label, its probabilities and a weight (gold 1, weak by confidence,")
    tour.say("rows no function voted on 0):")
    tour.show("SELECT source, count(*) AS flights, round(avg(weight), 3) AS avg_weight FROM delay_labels GROUP BY ALL ORDER BY 1")
    tour.show("SELECT lf, round(learned_accuracy, 3) AS learned, round(emp_accuracy, 3) AS on_expert_sample "
              "FROM ml_lf_summary('flight_facts', gold := 'expert_label')")
    _messages(tour)


def _messages(tour) -> None:
    """The whole chain on text: LFs -> APPLY -> LABEL MODEL -> a text model -> new messages -> serve."""
    import json
    import urllib.request

    from sqlml.datasets import load_messages
    from sqlml.serving.server import Server, ServerConfig

    con = tour.con
    tour.heading("The same loop on text: labeling SMS spam without labels")
    n = 2000 if tour.quick else 6000
    load_messages(con, "messages", n, seed=0)
    load_messages(con, "new_messages", 500, seed=1)
    tour.say(f"{n} text messages (generated: spam offers and everyday chat; `truth` is hidden from the")
    tour.say("labeling functions and the models, it only scores them). A few keyword hunches, one of them")
    tour.say("noisy ('free' is also 'are you free tonight'), and votes from another tool imported as a matrix:")
    tour.run(
        """
CREATE OR REPLACE LABELING FUNCTION offers ON messages WITH (classes := ['ham', 'spam']) AS
    CASE WHEN regexp_matches(message, 'WINNER|won|Claim|prize', 'i') THEN 'spam' END;
CREATE OR REPLACE LABELING FUNCTION says_free ON messages AS CASE WHEN contains(lower(message), 'free') THEN 'spam' END;
CREATE OR REPLACE LABELING FUNCTION call_to_action ON messages AS
    CASE WHEN regexp_matches(message, 'txt|reply|www\\.', 'i') THEN 'spam' END;
CREATE OR REPLACE LABELING FUNCTION everyday ON messages AS
    CASE WHEN regexp_matches(message, 'lunch|dinner|mum|tonight|home') THEN 'ham' END;
CREATE OR REPLACE LABELING FUNCTION chatty ON messages AS CASE WHEN regexp_matches(message, 'haha|sorry|love') THEN 'ham' END
"""
    )
    for table in ("messages", "new_messages"):  # what another tool left: one vote per rule, -1 abstains
        tour.run(
            f"ALTER TABLE {table} ADD COLUMN other_votes INTEGER[];\n"
            f"UPDATE {table} SET other_votes = [CASE WHEN contains(message, 'STOP') THEN 1 ELSE -1 END,\n"
            f"    CASE WHEN contains(message, 'see you') THEN 0 ELSE -1 END]"
        )
    tour.show("CREATE OR REPLACE LABELING FUNCTIONS ON messages FROM COLUMN other_votes WITH (names := ['stop_word', 'see_you'])")
    tour.show("APPLY LABELING FUNCTIONS ON messages KEY id")
    tour.show("CREATE OR REPLACE LABEL MODEL message_labels ON messages WITH (seed := 0)")
    tour.say("\nThe label model labels only what the functions cover; an end model on the text itself learns")
    tour.say("the words they never mention (prize, voucher, ringtone...) from its soft labels and weights:")
    epochs = 6 if tour.quick else 15
    tour.run(
        f"""
CREATE OR REPLACE MODEL spam_filter WITH (text := ['message'], soft_label := 'probs', weight := 'weight',
    classes := ['ham', 'spam'], architecture := 'logistic', epochs := {epochs}, lr := 0.05, progress := false) AS
SELECT m.message, l.label, l.probs, l.weight FROM messages AS m JOIN message_labels AS l USING (id)
WHERE l.source <> 'abstain'
"""
    )
    tour.say("\nOn 500 messages neither model has seen: the label model applied with its fitted parameters")
    tour.say("(ml_label_model_predict runs the labeling functions on the new rows), and the text model:")
    rows = tour.show(
        """
WITH lm AS (SELECT * FROM ml_label_model_predict('message_labels', 'SELECT * FROM new_messages'))
SELECT round(avg((lm.label = n.truth)::INT), 3) AS label_model_accuracy,
       round(avg((lm.label = n.truth)::INT) FILTER (WHERE lm.source = 'weak'), 3) AS on_covered_rows,
       round(avg((lm.source = 'weak')::INT), 3) AS coverage,
       round(avg((ml_predict('spam_filter', n.message) = n.truth)::INT), 3) AS text_model_accuracy
FROM new_messages AS n JOIN lm USING (id)
"""
    )
    tour.facts["text"] = {"label_model_accuracy": rows[0][0], "coverage": rows[0][2], "text_model_accuracy": rows[0][3]}
    tour.show("SELECT message, ml_predict('spam_filter', message) AS predicted, truth FROM new_messages "
              "WHERE id IN (3, 4, 5, 6, 7) ORDER BY id")
    tour.say("\nServed as is (`sqlml serve DB --model spam_filter`): the endpoint takes the raw text and")
    tour.say("tokenizes it with the vocabulary stored with the model, exactly as training did:")
    tour.con.sql("CHECKPOINT")
    server = Server(tour.db_path, "spam_filter", config=ServerConfig(port=0), connection=con).start()
    try:
        body = {"inputs": [{"message": "WINNER! claim your cash prize, txt WIN to 80082"},
                           {"message": "running late, see you at dinner"}]}
        request = urllib.request.Request(server.url + "/predict", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
        tour.say(f"  POST /predict {json.dumps(body)}")
        tour.say(f"  -> {json.dumps(answer)}")
        tour.facts["text"]["served"] = [p["label"] for p in answer["predictions"]]
    finally:
        server.stop()
