-- sqlml catalog, version 12: the fitted parameters of each label model, so that
-- ml_label_model_predict(label_model, query) labels new rows without refitting.

CREATE TABLE IF NOT EXISTS sqlml.label_model_params (
    model         VARCHAR NOT NULL,
    lfs           VARCHAR[] NOT NULL,  -- labeling functions in model order
    fingerprints  VARCHAR[] NOT NULL,  -- each one's definition fingerprint when the model was fitted
    posterior     VARCHAR NOT NULL,    -- 'votes' (counts votes: majority) | 'model' (conditionally independent)
    class_balance DOUBLE[] NOT NULL,   -- P(Y), k values
    log_vote      DOUBLE[] NOT NULL,   -- log P(lf j votes a | Y = y), m * k * k values, [j][a][y] row-major
    log_abstain   DOUBLE[]             -- log P(lf j abstains | Y = y), m * k values, or NULL (abstains ignored)
);
