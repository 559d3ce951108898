"""Training internals (not public API): the network, the objective, the trainer and what it is
handed (step rules, hooks, stopping, thread tuning, batches), and the estimator's fit.

Nothing is imported here, so that importing one part does not pull in the rest.
"""
